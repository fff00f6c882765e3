//! What the calls did: counts, calls in flight over time, latency percentiles.
//!
//! A [`CallStats`] is a sink of call events. Two kinds exist: one per query (its
//! [`Flow`](super::Flow)'s, read by a job's progress and `dfasync`'s progress
//! line) and one per async operator (shown by `EXPLAIN ANALYZE`). Code that makes calls does not
//! know which sinks listen: it records into every sink of the current task that
//! [`within_all`] installed, so the engine and its clients stay free of plumbing.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricValue, Time,
};
use hdrhistogram::Histogram;

pub use super::flight::{Flight, InFlight};
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
    /// Answers that asked the caller to slow down (for HTTP: status 429).
    pub throttled: Count,
    /// Rows or calls that ended in an error.
    pub errors: Count,
    /// Rows emitted by the async operators.
    pub rows: Count,
    /// Calls answered from the journal (nothing sent).
    pub replayed: Count,
    /// Calls that shared an identical call in flight (nothing sent).
    pub merged: Count,
    /// Time calls waited for the client-side rate limiter.
    pub rate_wait: Time,
    /// The budget in force, for the utilization figure.
    pub budget: AtomicUsize,
    by_kind: Mutex<BTreeMap<&'static str, usize>>,
    /// Calls in flight and their latencies: one lock, so a call's end takes
    /// it once.
    timing: Mutex<Timing>,
    /// Called (synchronously) whenever the last call in flight ends.
    on_idle: OnceLock<IdleHook>,
}

#[derive(Debug)]
struct Timing {
    flight: Flight,
    /// Call latencies in microseconds (1 µs to 1 h, 3 significant digits).
    latency: Histogram<u64>,
}

impl Timing {
    /// A call ended at `end`, after `micros` when it finished (`None`:
    /// dropped); whether none is in flight now.
    fn end(&mut self, end: Instant, micros: Option<u64>) -> bool {
        if let Some(micros) = micros {
            self.latency.saturating_record(micros.max(1));
        }
        self.flight.end(end);
        self.flight.now() == 0
    }
}

struct IdleHook(Box<dyn Fn() + Send + Sync>);

impl fmt::Debug for IdleHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdleHook")
    }
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
            rows: Count::new(),
            replayed: Count::new(),
            merged: Count::new(),
            rate_wait: Time::new(),
            budget: AtomicUsize::new(0),
            by_kind: Mutex::new(BTreeMap::new()),
            timing: Mutex::new(Timing {
                flight: Flight::default(),
                latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("valid histogram bounds"),
            }),
            on_idle: OnceLock::new(),
        }
    }

    /// Stats whose figures are shown as metrics of a plan node (`EXPLAIN ANALYZE`),
    /// the count of answers that asked to slow down under the name `throttled`
    /// (the client's word for them).
    pub fn registered(metrics: &ExecutionPlanMetricsSet, throttled: &'static str) -> Arc<Self> {
        let stats = Arc::new(Self::new());
        let count = |name: &'static str, count: &Count| {
            MetricBuilder::new(metrics).build(MetricValue::Count {
                name: name.into(),
                count: count.clone(),
            });
        };
        count("calls", &stats.calls);
        count("retries", &stats.retries);
        count(throttled, &stats.throttled);
        count("errors", &stats.errors);
        count("replayed", &stats.replayed);
        count("merged", &stats.merged);
        MetricBuilder::new(metrics).build(MetricValue::Time {
            name: "rate_limit_wait".into(),
            time: stats.rate_wait.clone(),
        });
        for (name, value) in super::metric_view::views(&stats) {
            MetricBuilder::new(metrics).build(MetricValue::Custom {
                name: name.into(),
                value,
            });
        }
        stats
    }

    pub fn in_flight(&self) -> InFlight {
        self.timing.lock().flight.snapshot()
    }

    /// Installs `f`, called synchronously each time the number of calls in flight
    /// drops to zero (before the operator can emit its last rows). One hook per
    /// sink; returns false if one was already installed.
    #[cfg(feature = "cli")]
    pub fn on_idle(&self, f: impl Fn() + Send + Sync + 'static) -> bool {
        self.on_idle.set(IdleHook(Box::new(f))).is_ok()
    }

    /// Latency at quantile `q` (0..=1) of the finished calls.
    pub fn latency(&self, q: f64) -> Duration {
        Duration::from_micros(self.timing.lock().latency.value_at_quantile(q))
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
    static SINKS: Arc<[Arc<CallStats>]>;
}

/// [`within_all`] for one sink.
#[cfg(test)]
pub async fn within<F: Future>(stats: Arc<CallStats>, f: F) -> F::Output {
    within_all(vec![stats], f).await
}

/// Runs `f` with `stats` added to the sinks of the current task (those of an
/// enclosing call stay).
pub async fn within_all<F: Future>(stats: Vec<Arc<CallStats>>, f: F) -> F::Output {
    let mut sinks: Vec<_> = SINKS.try_with(|sinks| sinks.to_vec()).unwrap_or_default();
    for s in stats {
        if !sinks.iter().any(|x| Arc::ptr_eq(x, &s)) {
            sinks.push(s);
        }
    }
    SINKS.scope(sinks.into(), f).await
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

/// Records `n` calls answered from the journal.
pub fn replayed(n: usize) {
    if n > 0 {
        each(|s| s.replayed.add(n));
    }
}

/// Records a call that shared an identical one in flight.
pub fn merged() {
    each(|s| s.merged.add(1));
}

/// Records `n` rows emitted by an async operator.
pub fn emitted(n: usize) {
    each(|s| s.rows.add(n));
}

/// Records a failed row or call.
pub fn failed(kind: &'static str) {
    each(|s| s.error(kind));
}

/// A call in flight, from admission (a budget slot held) to its end.
#[must_use]
pub struct CallGuard {
    /// None outside any [`within_all`] (nothing to record, no clock read), and
    /// once recorded.
    sinks: Option<Arc<[Arc<CallStats>]>>,
    start: Instant,
}

/// Records the start of a call; [`CallGuard::finish`] records its end. The clock is
/// read once at the start and once at the end, whatever the number of sinks.
pub fn start_call() -> CallGuard {
    let sinks = SINKS.try_with(Arc::clone).ok().filter(|s| !s.is_empty());
    let start = Instant::now();
    for s in sinks.iter().flat_map(|s| s.iter()) {
        s.calls.add(1);
        s.timing.lock().flight.start(start);
    }
    CallGuard { sinks, start }
}

impl CallGuard {
    /// The call has finished: counts it and its latency.
    pub fn finish(mut self) {
        self.end(true);
    }

    /// Out of flight (and, when `finished`, counted done with its latency):
    /// one lock per sink.
    fn end(&mut self, finished: bool) {
        let Some(sinks) = self.sinks.take() else {
            return;
        };
        let end = Instant::now();
        let micros =
            finished.then(|| u64::try_from((end - self.start).as_micros()).unwrap_or(u64::MAX));
        for s in sinks.iter() {
            if finished {
                s.done.add(1);
            }
            let idle = s.timing.lock().end(end, micros);
            if let (true, Some(hook)) = (idle, s.on_idle.get()) {
                (hook.0)();
            }
        }
    }
}

/// Runs `wait` (a call waiting to retry, its budget slot given back) counted
/// out of the calls in flight of the current sinks, and back in after it.
pub(crate) async fn out_of_flight<F: std::future::Future>(wait: F) -> F::Output {
    let sinks = SINKS.try_with(Arc::clone).ok().filter(|s| !s.is_empty());
    for s in sinks.iter().flat_map(|s| s.iter()) {
        s.timing.lock().flight.end(Instant::now());
    }
    let out = wait.await;
    for s in sinks.iter().flat_map(|s| s.iter()) {
        s.timing.lock().flight.start(Instant::now());
    }
    out
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.end(false);
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
}
