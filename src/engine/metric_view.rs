//! The figures of a [`CallStats`] that are not plain counts (errors by kind, calls
//! in flight, latency percentiles) as custom plan metrics for `EXPLAIN ANALYZE`.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use datafusion::physical_plan::metrics::CustomMetricValue;
use parking_lot::Mutex;

use super::CallStats;

/// The custom metrics showing `stats`, with their names.
pub(super) fn views(stats: &Arc<CallStats>) -> Vec<(&'static str, Arc<dyn CustomMetricValue>)> {
    [View::ErrorKinds, View::InFlight, View::Latency]
        .into_iter()
        .map(|what| {
            let view: Arc<dyn CustomMetricValue> = Arc::new(StatsView {
                stats: Mutex::new(Some(Arc::clone(stats))),
                what,
            });
            (what.name(), view)
        })
        .collect()
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
                let budget = stats.budget.load(Ordering::Relaxed);
                let share = |x: f64| match budget {
                    0 => String::new(),
                    b => format!(" ({:.0}%)", 100.0 * x / b as f64),
                };
                write!(f, "peak {}", flight.peak)?;
                if budget > 0 {
                    write!(f, " of {budget}")?;
                }
                write!(
                    f,
                    ", mean {:.1}{}, admitting {:.1}{}",
                    flight.mean,
                    share(flight.mean),
                    flight.admitting,
                    share(flight.admitting)
                )
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
