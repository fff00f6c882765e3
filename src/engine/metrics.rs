//! What the calls did: counts, calls in flight over time, latency percentiles.
//!
//! A [`CallStats`] is a sink of call events. Two kinds exist: one per session (in
//! the [`Budget`](super::Budget), read by `dfasync`'s progress line) and one per
//! async operator (shown by `EXPLAIN ANALYZE`). Code that makes calls does not
//! know which sinks listen: it records into every sink of the current task that
//! [`within`] installed, so the engine and its clients stay free of plumbing.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use datafusion::physical_plan::metrics::{
    Count, CustomMetricValue, ExecutionPlanMetricsSet, MetricBuilder, MetricValue, Time,
};
use hdrhistogram::Histogram;
use parking_lot::Mutex;

/// Counters of one sink. Cheap to update from many calls at once.
#[derive(Debug)]
pub struct CallStats {
    /// Calls started.
    pub calls: Count,
    /// Calls finished (successfully or not; cancelled calls are not counted).
    pub done: Count,
    /// Attempts beyond the first.
    pub retries: Count,
    /// Answers that said "too many requests" (HTTP 429).
    pub throttled: Count,
    /// Rows or calls that ended in an error.
    pub errors: Count,
    /// Time calls waited for the client-side rate limiter.
    pub rate_wait: Time,
    /// The budget in force, for the utilization figure.
    pub budget: AtomicUsize,
    by_kind: Mutex<BTreeMap<&'static str, usize>>,
    flight: Mutex<Flight>,
    /// Call latencies in microseconds (1 µs to 1 h, 3 significant digits).
    latency: Mutex<Histogram<u64>>,
}

/// Calls in flight over time: the integral gives the mean.
#[derive(Debug, Default, Clone, Copy)]
struct Flight {
    now: usize,
    peak: usize,
    /// Σ in_flight × dt, in call-seconds.
    area: f64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Flight {
    fn change(&mut self, delta: isize, t: Instant) {
        if let Some(last) = self.last {
            self.area += self.now as f64 * (t - last).as_secs_f64();
        }
        self.first.get_or_insert(t);
        self.last = Some(t);
        self.now = self.now.saturating_add_signed(delta);
        self.peak = self.peak.max(self.now);
    }
}

/// A snapshot of the calls in flight.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InFlight {
    pub now: usize,
    pub peak: usize,
    /// Mean calls in flight between the first call's start and the last change.
    pub mean: f64,
}

impl Default for CallStats {
    fn default() -> Self {
        Self::new()
    }
}

impl CallStats {
    pub fn new() -> Self {
        Self {
            calls: Count::new(),
            done: Count::new(),
            retries: Count::new(),
            throttled: Count::new(),
            errors: Count::new(),
            rate_wait: Time::new(),
            budget: AtomicUsize::new(0),
            by_kind: Mutex::new(BTreeMap::new()),
            flight: Mutex::new(Flight::default()),
            latency: Mutex::new(
                Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            ),
        }
    }

    /// Stats whose figures are shown as metrics of a plan node (`EXPLAIN ANALYZE`).
    pub fn registered(metrics: &ExecutionPlanMetricsSet) -> Arc<Self> {
        let stats = Arc::new(Self::new());
        let count = |name: &'static str, count: &Count| {
            MetricBuilder::new(metrics).build(MetricValue::Count {
                name: name.into(),
                count: count.clone(),
            })
        };
        count("calls", &stats.calls);
        count("retries", &stats.retries);
        count("http_429", &stats.throttled);
        count("errors", &stats.errors);
        MetricBuilder::new(metrics).build(MetricValue::Time {
            name: "rate_limit_wait".into(),
            time: stats.rate_wait.clone(),
        });
        for what in [View::ErrorKinds, View::InFlight, View::Latency] {
            MetricBuilder::new(metrics).build(MetricValue::Custom {
                name: what.name().into(),
                value: Arc::new(StatsView {
                    stats: Mutex::new(Some(Arc::clone(&stats))),
                    what,
                }),
            });
        }
        stats
    }

    pub fn in_flight(&self) -> InFlight {
        let f = *self.flight.lock();
        let span = match (f.first, f.last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        InFlight {
            now: f.now,
            peak: f.peak,
            mean: if span > 0.0 { f.area / span } else { 0.0 },
        }
    }

    /// Latency at quantile `q` (0..=1) of the finished calls.
    pub fn latency(&self, q: f64) -> Duration {
        Duration::from_micros(self.latency.lock().value_at_quantile(q))
    }

    /// Error counts by kind.
    pub fn error_kinds(&self) -> BTreeMap<&'static str, usize> {
        self.by_kind.lock().clone()
    }

    fn error(&self, kind: &'static str) {
        self.errors.add(1);
        *self.by_kind.lock().entry(kind).or_default() += 1;
    }
}

tokio::task_local! {
    static SINKS: Vec<Arc<CallStats>>;
}

/// Runs `f` with `stats` added to the sinks of the current task (those of an
/// enclosing `within` stay).
pub async fn within<F: Future>(stats: Arc<CallStats>, f: F) -> F::Output {
    within_all(vec![stats], f).await
}

/// [`within`] for several sinks at once.
pub async fn within_all<F: Future>(stats: Vec<Arc<CallStats>>, f: F) -> F::Output {
    let mut sinks = SINKS.try_with(Clone::clone).unwrap_or_default();
    for s in stats {
        if !sinks.iter().any(|x| Arc::ptr_eq(x, &s)) {
            sinks.push(s);
        }
    }
    SINKS.scope(sinks, f).await
}

fn each(f: impl Fn(&CallStats)) {
    let _ = SINKS.try_with(|sinks| sinks.iter().for_each(|s| f(s)));
}

/// Records `n` retries.
pub fn retried(n: usize) {
    if n > 0 {
        each(|s| s.retries.add(n));
    }
}

/// Records a "too many requests" answer.
pub fn throttled() {
    each(|s| s.throttled.add(1));
}

/// Records time spent waiting for the rate limiter.
pub fn rate_waited(d: Duration) {
    if !d.is_zero() {
        each(|s| s.rate_wait.add_duration(d));
    }
}

/// Records a failed row or call.
pub fn failed(kind: &'static str) {
    each(|s| s.error(kind));
}

/// A call in flight, from admission (a budget slot held) to its end.
#[must_use]
pub struct CallGuard {
    sinks: Vec<Arc<CallStats>>,
    start: Instant,
    finished: bool,
}

/// Records the start of a call; [`CallGuard::finish`] records its end.
pub fn start_call() -> CallGuard {
    let sinks = SINKS.try_with(Clone::clone).unwrap_or_default();
    for s in &sinks {
        s.calls.add(1);
        s.flight.lock().change(1, Instant::now());
    }
    CallGuard {
        sinks,
        start: Instant::now(),
        finished: false,
    }
}

impl CallGuard {
    /// The call has finished: counts it and its latency.
    pub fn finish(mut self) {
        let micros = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        for s in &self.sinks {
            s.done.add(1);
            s.latency.lock().saturating_record(micros.max(1));
        }
        self.finished = true;
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        for s in &self.sinks {
            s.flight.lock().change(-1, Instant::now());
        }
    }
}

/// One figure of a [`CallStats`] as a plan metric.
#[derive(Debug, Clone, Copy)]
enum View {
    ErrorKinds,
    InFlight,
    Latency,
}

impl View {
    fn name(self) -> &'static str {
        match self {
            View::ErrorKinds => "errors_by_kind",
            View::InFlight => "in_flight",
            View::Latency => "latency",
        }
    }
}

#[derive(Debug)]
struct StatsView {
    stats: Mutex<Option<Arc<CallStats>>>,
    what: View,
}

impl fmt::Display for StatsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(stats) = self.stats.lock().clone() else {
            return write!(f, "-");
        };
        match self.what {
            View::ErrorKinds => {
                let kinds = stats.error_kinds();
                if kinds.is_empty() {
                    return write!(f, "none");
                }
                let parts: Vec<_> = kinds.iter().map(|(k, n)| format!("{k}:{n}")).collect();
                write!(f, "{}", parts.join(" "))
            }
            View::InFlight => {
                let flight = stats.in_flight();
                write!(f, "peak {} mean {:.1}", flight.peak, flight.mean)?;
                match stats.budget.load(Ordering::Relaxed) {
                    0 => Ok(()),
                    budget => write!(
                        f,
                        " of {budget} ({:.0}%)",
                        100.0 * flight.mean / budget as f64
                    ),
                }
            }
            View::Latency => {
                if stats.done.value() == 0 {
                    return write!(f, "-");
                }
                let ms = |q| stats.latency(q).as_secs_f64() * 1000.0;
                write!(
                    f,
                    "p50 {:.1}ms p90 {:.1}ms p99 {:.1}ms",
                    ms(0.5),
                    ms(0.9),
                    ms(0.99)
                )
            }
        }
    }
}

impl CustomMetricValue for StatsView {
    fn new_empty(&self) -> Arc<dyn CustomMetricValue> {
        Arc::new(StatsView {
            stats: Mutex::new(None),
            what: self.what,
        })
    }

    fn aggregate(&self, other: Arc<dyn CustomMetricValue + 'static>) {
        if let Some(other) = other.as_any().downcast_ref::<StatsView>() {
            let theirs = other.stats.lock().clone();
            let mut mine = self.stats.lock();
            if mine.is_none() {
                *mine = theirs;
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_usize(&self) -> usize {
        let stats = self.stats.lock().clone();
        stats.map_or(0, |s| match self.what {
            View::ErrorKinds => s.errors.value(),
            View::InFlight => s.in_flight().peak,
            View::Latency => s.latency(0.5).as_micros() as usize,
        })
    }

    fn is_eq(&self, other: &Arc<dyn CustomMetricValue>) -> bool {
        other.as_any().downcast_ref::<StatsView>().is_some_and(|o| {
            let (a, b) = (self.stats.lock().clone(), o.stats.lock().clone());
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(&a, &b),
                (None, None) => true,
                _ => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sinks_nest_and_record_once_each() {
        let (outer, inner) = (Arc::new(CallStats::new()), Arc::new(CallStats::new()));
        within(Arc::clone(&outer), async {
            within(Arc::clone(&inner), async {
                start_call().finish();
                retried(2);
                failed("timeout");
            })
            .await;
            within(Arc::clone(&outer), async { start_call().finish() }).await;
        })
        .await;
        assert_eq!((outer.calls.value(), inner.calls.value()), (2, 1));
        assert_eq!((outer.retries.value(), inner.retries.value()), (2, 2));
        assert_eq!(inner.error_kinds().get("timeout"), Some(&1));
        assert_eq!(outer.in_flight().now, 0);
        assert_eq!(outer.in_flight().peak, 1);
        // outside any `within` nothing is recorded and nothing fails
        start_call().finish();
        assert_eq!(outer.calls.value(), 2);
    }

    #[test]
    fn mean_in_flight_is_time_weighted() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut f = Flight::default();
        // 2 calls for 1 s, then 1 call for 2 s: mean (2 + 2) / 3
        f.change(1, at(0));
        f.change(1, at(0));
        f.change(-1, at(1000));
        f.change(-1, at(3000));
        let stats = CallStats::new();
        *stats.flight.lock() = f;
        let flight = stats.in_flight();
        assert_eq!((flight.now, flight.peak), (0, 2));
        assert!((flight.mean - 4.0 / 3.0).abs() < 1e-9, "{flight:?}");
    }
}
