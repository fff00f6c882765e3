//! The adaptive limits of a session's keys (hosts) as a plan metric for
//! `EXPLAIN ANALYZE`: `host_limits`.

use std::fmt;
use std::sync::Arc;

use datafusion::physical_plan::metrics::{
    CustomMetricValue, ExecutionPlanMetricsSet, MetricBuilder, MetricValue,
};
use parking_lot::Mutex;

use super::Adaptive;

/// Adds `host_limits` to `metrics`: per key whose limits moved or that signalled
/// load, its concurrency limit now, the lowest it went and the ceiling, the
/// pace in force and why (advertised, learned), the throttled / overloaded
/// answers and the time calls waited for it (since the session started).
pub(crate) fn register(metrics: &ExecutionPlanMetricsSet, adaptive: &Arc<Adaptive>) {
    MetricBuilder::new(metrics).build(MetricValue::Custom {
        name: "host_limits".into(),
        value: Arc::new(LimitsView(Mutex::new(Some(Arc::clone(adaptive))))),
    });
}

#[derive(Debug)]
struct LimitsView(Mutex<Option<Arc<Adaptive>>>);

impl fmt::Display for LimitsView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(adaptive) = self.0.lock().clone() else {
            return write!(f, "-");
        };
        let moved: Vec<String> = adaptive
            .report()
            .into_iter()
            .filter(|r| {
                r.lowest < r.ceiling
                    || r.rate.is_some()
                    || r.limited_by.is_some()
                    || r.throttled + r.overloaded > 0
            })
            .map(|r| {
                let why = r.reason.map(|w| format!(" {w}")).unwrap_or_default();
                let held = r.limited_by.map(|w| format!(" {w}")).unwrap_or_default();
                let rate = r
                    .rate
                    .map(|x| format!(", pace {x:.1}/s{why}"))
                    .unwrap_or_default();
                format!(
                    "{}: limit {}{held} (lowest {}, ceiling {}){rate}, {} throttled, {} overloaded, waited {} ms",
                    r.key,
                    r.limit,
                    r.lowest,
                    r.ceiling,
                    r.throttled,
                    r.overloaded,
                    r.waited.as_millis()
                )
            })
            .collect();
        if moved.is_empty() {
            return write!(f, "unchanged");
        }
        write!(f, "{}", moved.join("; "))
    }
}

impl CustomMetricValue for LimitsView {
    fn new_empty(&self) -> Arc<dyn CustomMetricValue> {
        Arc::new(LimitsView(Mutex::new(None)))
    }

    fn aggregate(&self, other: Arc<dyn CustomMetricValue + 'static>) {
        if let Some(other) = other.as_any().downcast_ref::<LimitsView>() {
            let theirs = other.0.lock().clone();
            let mut mine = self.0.lock();
            if mine.is_none() {
                *mine = theirs;
            }
        }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn as_usize(&self) -> usize {
        let adaptive = self.0.lock().clone();
        adaptive.map_or(0, |a| a.report().iter().map(|r| r.limit).min().unwrap_or(0))
    }

    fn is_eq(&self, other: &Arc<dyn CustomMetricValue>) -> bool {
        other
            .as_any()
            .downcast_ref::<LimitsView>()
            .is_some_and(|o| match (self.0.lock().clone(), o.0.lock().clone()) {
                (Some(a), Some(b)) => Arc::ptr_eq(&a, &b),
                (None, None) => true,
                _ => false,
            })
    }
}
