//! A quota a service advertised: the vocabulary the transport reads rate-limit
//! headers into and the engine paces by (neither knows the other).

use std::time::Duration;

/// A quota a service advertised in an answer: `remaining` calls until `reset`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Quota {
    /// The policy, resource or partition it belongs to (empty: unnamed).
    pub name: String,
    /// Counted in calls (else in tokens or bytes, whose cost per call is
    /// unknown: only an exhausted one holds calls back).
    pub requests: bool,
    pub remaining: u64,
    /// Until the quota is restored.
    pub reset: Duration,
    /// The quota of a whole window, and the window, when told.
    pub limit: Option<u64>,
    pub window: Option<Duration>,
}
