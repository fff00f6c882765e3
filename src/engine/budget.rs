//! The in-flight budget shared by every partition and query of a session.

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use super::CallStats;

/// A resizable limit on calls in flight, shared by everything registered on one
/// `SessionContext`.
///
/// Resizing (a `SET async_udf.max_in_flight` between queries) installs a new
/// semaphore of the new size; calls still holding a permit of the old one finish
/// under the old size. While queries started before the `SET` are still running,
/// the total in flight can therefore briefly be the old plus the new size.
#[derive(Debug)]
pub struct Budget {
    current: Mutex<(usize, Arc<Semaphore>)>,
    stats: Arc<CallStats>,
}

impl Budget {
    /// A budget of `limit` calls in flight (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            current: Mutex::new((limit, Arc::new(Semaphore::new(limit)))),
            stats: Arc::new(CallStats::new()),
        }
    }

    /// The semaphore to acquire permits from, resized first to `limit` if the
    /// configured limit has changed since the last call.
    pub fn semaphore(&self, limit: usize) -> Arc<Semaphore> {
        let limit = limit.max(1);
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 != limit {
            *current = (limit, Arc::new(Semaphore::new(limit)));
        }
        Arc::clone(&current.1)
    }

    /// What every call of the session did so far (never reset; for progress
    /// displays). Calls record into it when run [`within`](super::within) it.
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.stats
    }

    /// The limit currently in force.
    pub fn limit(&self) -> usize {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).0
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
    fn resize_installs_a_new_semaphore() {
        let budget = Budget::new(4);
        let a = budget.semaphore(4);
        assert_eq!(a.available_permits(), 4);
        assert!(Arc::ptr_eq(&a, &budget.semaphore(4)));
        let b = budget.semaphore(9);
        assert_eq!(b.available_permits(), 9);
        assert_eq!(budget.limit(), 9);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(budget.semaphore(0).available_permits(), 1);
    }
}
