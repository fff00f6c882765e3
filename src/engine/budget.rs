//! The in-flight budget shared by every partition and query of a session.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::share::Slots;

/// The limit on calls in flight, shared by everything registered on one
/// `SessionContext`.
///
/// There is one set of [`Slots`] per value of `async_udf.max_in_flight` in use:
/// queries running with the same value share one budget of that size (in fair
/// shares, see [`super::share`]), and a query run with another value (a `SET`
/// between queries, or two sessions' settings) gets its own, without disturbing
/// the queries already running. The calls in flight in the session are therefore
/// at most the sum of the distinct values in use at the time (just the value,
/// when every query uses the same one). Slots nobody uses any more are dropped.
#[derive(Debug)]
pub struct Budget {
    current: Mutex<(usize, HashMap<usize, Arc<Slots>>)>,
}

impl Budget {
    /// A budget of `limit` calls in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            current: Mutex::new((limit.max(1), HashMap::new())),
        }
    }

    /// The `limit` slots to acquire from (shared with every other caller asking
    /// for the same limit), handed out in fair shares (`fair`) or first come,
    /// first served, from now on.
    pub fn slots(&self, limit: usize, fair: bool) -> Arc<Slots> {
        let limit = limit.max(1);
        let mut current = self.current.lock();
        current.0 = limit;
        // forget the slots no caller holds any more
        current.1.retain(|_, s| Arc::strong_count(s) > 1);
        let slots = current.1.entry(limit).or_insert_with(|| Slots::new(limit));
        slots.set_fair(fair);
        Arc::clone(slots)
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
        let a = budget.slots(4, true);
        assert_eq!(a.available(), 4);
        let b = budget.slots(9, true);
        assert_eq!(b.available(), 9);
        assert_eq!(budget.limit(), 9);
        // asking for 4 again while `a` is in use: the same one, not a fresh one
        assert!(Arc::ptr_eq(&a, &budget.slots(4, true)));
        assert!(Arc::ptr_eq(&b, &budget.slots(9, true)));
        assert_eq!(budget.slots(0, true).available(), 1);
        // unused ones are forgotten
        drop(a);
        let _ = budget.slots(9, true);
        assert_eq!(budget.current.lock().1.len(), 1);
    }
}
