//! The in-flight budget shared by every partition and query of a session.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use tokio::sync::Semaphore;

use super::CallStats;

/// The limit on calls in flight, shared by everything registered on one
/// `SessionContext`.
///
/// There is one semaphore per value of `async_udf.max_in_flight` in use: queries
/// running with the same value share one budget of that size, and a query run
/// with another value (a `SET` between queries, or two sessions' settings) gets
/// its own, without disturbing the queries already running. The calls in flight
/// in the session are therefore at most the sum of the distinct values in use at
/// the time (just the value, when every query uses the same one). A semaphore
/// nobody uses any more is dropped.
#[derive(Debug)]
pub struct Budget {
    current: Mutex<(usize, HashMap<usize, Arc<Semaphore>>)>,
    stats: Arc<CallStats>,
}

impl Budget {
    /// A budget of `limit` calls in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            current: Mutex::new((limit.max(1), HashMap::new())),
            stats: Arc::new(CallStats::new()),
        }
    }

    /// The semaphore of `limit` permits to acquire from (shared with every other
    /// caller asking for the same limit).
    pub fn semaphore(&self, limit: usize) -> Arc<Semaphore> {
        let limit = limit.max(1);
        let mut current = self.current.lock();
        current.0 = limit;
        // forget the semaphores no caller holds any more
        current.1.retain(|_, s| Arc::strong_count(s) > 1);
        Arc::clone(
            current
                .1
                .entry(limit)
                .or_insert_with(|| Arc::new(Semaphore::new(limit))),
        )
    }

    /// What every call of the session did so far (never reset; for progress
    /// displays). Calls record into it when run [`within`](super::within) it.
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.stats
    }

    /// The limit asked for last.
    pub fn limit(&self) -> usize {
        self.current.lock().0
    }
}

impl Default for Budget {
    fn default() -> Self {
        Self::new(64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_semaphore_per_limit_in_use() {
        let budget = Budget::new(4);
        let a = budget.semaphore(4);
        assert_eq!(a.available_permits(), 4);
        let b = budget.semaphore(9);
        assert_eq!(b.available_permits(), 9);
        assert_eq!(budget.limit(), 9);
        // asking for 4 again while `a` is in use: the same one, not a fresh one
        assert!(Arc::ptr_eq(&a, &budget.semaphore(4)));
        assert!(Arc::ptr_eq(&b, &budget.semaphore(9)));
        assert_eq!(budget.semaphore(0).available_permits(), 1);
        // unused ones are forgotten
        drop(a);
        let _ = budget.semaphore(9);
        assert_eq!(budget.current.lock().1.len(), 1);
    }
}
