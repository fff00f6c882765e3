//! Calls in flight over time. The time integral gives the mean in flight; the
//! integral up to the latest start gives the mean *while calls were still being
//! admitted*, which is what a scheduler controls (after the last start, only the
//! slowest calls are left and no design can keep the budget busy).

use std::time::Instant;

/// In-flight bookkeeping of one sink. Update with [`Flight::start`] / [`Flight::end`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Flight {
    now: usize,
    peak: usize,
    /// Σ in_flight × dt, in call-seconds, up to `last`.
    area: f64,
    first: Option<Instant>,
    last: Option<Instant>,
    /// `area` at the latest start.
    area_at_last_start: f64,
    last_start: Option<Instant>,
}

/// A snapshot of the calls in flight.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct InFlight {
    pub now: usize,
    pub peak: usize,
    /// Mean calls in flight from the first start to the last change.
    pub mean: f64,
    /// Mean calls in flight from the first start to the last start (the admission
    /// phase); `peak` when every call started at once.
    pub admitting: f64,
}

impl Flight {
    /// A call started at `t`.
    pub fn start(&mut self, t: Instant) {
        self.change(1, t);
        self.area_at_last_start = self.area;
        self.last_start = Some(t);
    }

    /// A call ended (or was dropped) at `t`.
    pub fn end(&mut self, t: Instant) {
        self.change(-1, t);
    }

    fn change(&mut self, delta: isize, t: Instant) {
        if let Some(last) = self.last {
            self.area += self.now as f64 * t.saturating_duration_since(last).as_secs_f64();
        }
        self.first.get_or_insert(t);
        self.last = Some(t.max(self.last.unwrap_or(t)));
        self.now = self.now.saturating_add_signed(delta);
        self.peak = self.peak.max(self.now);
    }

    /// Calls in flight now.
    pub fn now(&self) -> usize {
        self.now
    }

    pub fn snapshot(&self) -> InFlight {
        let span = |to: Option<Instant>| match (self.first, to) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        let (all, admitting) = (span(self.last), span(self.last_start));
        InFlight {
            now: self.now,
            peak: self.peak,
            mean: if all > 0.0 { self.area / all } else { 0.0 },
            admitting: if admitting > 0.0 {
                self.area_at_last_start / admitting
            } else {
                self.peak as f64
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn means_are_time_weighted() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut f = Flight::default();
        // 2 calls for 1 s, the third starts at 1 s; then 2 calls until 2 s, 1 until 4 s
        f.start(at(0));
        f.start(at(0));
        f.end(at(1000));
        f.start(at(1000));
        f.end(at(2000));
        f.end(at(4000));
        let s = f.snapshot();
        assert_eq!((s.now, s.peak), (0, 2));
        // (2×1 + 2×1 + 1×2) / 4
        assert!((s.mean - 6.0 / 4.0).abs() < 1e-9, "{s:?}");
        // admission phase 0..1 s: 2 in flight
        assert!((s.admitting - 2.0).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn calls_started_together_admit_at_their_peak() {
        let t0 = Instant::now();
        let mut f = Flight::default();
        (0..3).for_each(|_| f.start(t0));
        f.end(t0 + Duration::from_secs(1));
        let s = f.snapshot();
        assert!((s.admitting - 3.0).abs() < f64::EPSILON);
        assert_eq!(s.peak, 3);
    }
}
